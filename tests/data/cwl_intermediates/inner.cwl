#!/usr/bin/env cwl-runner
# A chunk-like sub-workflow: `make` writes an intermediate file that `use` reads, and a note the
# sub-workflow returns (Toil's wrapper of that output holds all of `make`'s outputs); it returns
# `use`'s result and hands on a file it was given. tests: test_cwl_intermediates_fix.
cwlVersion: v1.2
class: Workflow
inputs:
  n: int
  given: File
outputs:
  result: {type: File, outputSource: use/result}
  handed_on: {type: File, outputSource: hand_on/out}
  note: {type: File, outputSource: make/note}
steps:
  make:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'head -c 200000 /dev/zero > intermediate.bin; echo made > note.txt']
      inputs: {n: int}
      outputs:
        big: {type: File, outputBinding: {glob: intermediate.bin}}
        note: {type: File, outputBinding: {glob: note.txt}}
    in: {n: n}
    out: [big, note]
  use:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'wc -c < "$0" > result.txt']
      inputs: {big: {type: File, inputBinding: {position: 1}}}
      outputs: {result: {type: File, outputBinding: {glob: result.txt}}}
    in: {big: make/big}
    out: [result]
  hand_on:
    run:
      class: ExpressionTool
      requirements: {InlineJavascriptRequirement: {}}
      inputs: {f: File}
      outputs: {out: File}
      expression: '$({"out": inputs.f})'
    in: {f: given}
    out: [out]
