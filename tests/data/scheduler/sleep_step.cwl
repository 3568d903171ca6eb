#!/usr/bin/env cwl-runner
# A step that outlives a short batch time limit (failure tests: killed by the scheduler, retried,
# then reported with the step name and its stderr tail).
cwlVersion: v1.2
class: CommandLineTool
id: sleepy_step
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
baseCommand: [sh, -c]
arguments:
  - echo "sleepy_step starting, will sleep $(inputs.seconds) s" >&2; sleep $(inputs.seconds); echo done
inputs:
  seconds: int
outputs:
  out: stdout
