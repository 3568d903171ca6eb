cwlVersion: v1.2
class: Workflow
id: gpu
doc: A GPU step (cwltool:CUDARequirement); run only where the site has an NVIDIA GPU.
inputs: []
outputs:
  product: {type: File, outputSource: on_gpu/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: gpu_source}}
    out: [product]
  on_gpu:
    run: ../cwl/tools/fake_gpu_transform.cwl
    in: {upstream: source/product}
    out: [product]
