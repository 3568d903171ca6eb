#!/usr/bin/env cwl-runner
# A scatter of inner.cwl, as the SAS scatters its chunk workflow.
cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}, SubworkflowFeatureRequirement: {}}
inputs:
  ns: {type: {type: array, items: int}}
  given: File
outputs:
  results: {type: {type: array, items: File}, outputSource: sub/result}
  handed_on: {type: {type: array, items: File}, outputSource: sub/handed_on}
  notes: {type: {type: array, items: File}, outputSource: sub/note}
steps:
  sub:
    run: inner.cwl
    scatter: n
    in: {n: ns, given: given}
    out: [result, handed_on, note]
