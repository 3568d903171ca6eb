#!/usr/bin/env cwl-runner
# N tiny jobs (scatter over indices) whose outputs are gathered by one more job: the workload of
# the scheduler tests (per-job cost, pilot vs per-job).
cwlVersion: v1.2
class: Workflow
id: scatter_echo
requirements:
  ScatterFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  indices: int[]
outputs:
  joined:
    type: File
    outputSource: gather/joined
steps:
  each:
    run: echo_one.cwl
    scatter: index
    in:
      index: indices
    out: [out]
  gather:
    run:
      class: CommandLineTool
      requirements:
        ResourceRequirement: {coresMin: 1, ramMin: 256}
      baseCommand: cat
      inputs:
        parts: {type: 'File[]', inputBinding: {position: 1}}
      stdout: joined.txt
      outputs:
        joined: {type: stdout}
    in:
      parts: each/out
    out: [joined]
