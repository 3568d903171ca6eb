#!/usr/bin/env cwl-runner
# One tiny job: writes its index and host (scheduler tests; the batch job ids are in the
# scheduler's own records: cwltool gives tools a clean environment).
cwlVersion: v1.2
class: CommandLineTool
id: echo_one
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
baseCommand: [sh, -c]
arguments:
  - echo "index $(inputs.index) host \$(hostname)" > out_$(inputs.index).txt
inputs:
  index: int
outputs:
  out:
    type: File
    outputBinding: {glob: out_*.txt}
