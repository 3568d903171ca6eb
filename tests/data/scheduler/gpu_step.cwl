#!/usr/bin/env cwl-runner
# A step asking for a GPU (cwltool:CUDARequirement): Toil turns it into an accelerator request,
# which the slurm profile routes to slurmGPUPartition with --gres=gpu:N.
cwlVersion: v1.2
class: CommandLineTool
id: gpu_step
$namespaces:
  cwltool: http://commonwl.org/cwltool#
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
hints:
  cwltool:CUDARequirement:
    cudaVersionMin: "11.0"
    cudaComputeCapability: "6.0"
    cudaDeviceCountMin: 1
baseCommand: [echo, gpu]
inputs: []
outputs:
  out: stdout
