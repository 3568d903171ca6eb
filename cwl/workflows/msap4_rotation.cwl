#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: msap4_rotation_stage
label: MSAP4 stage — rotation and activity of one chunk
doc: Rotation period and photometric activity index.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

inputs:
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file from the MSAP1 stage

steps:
  measure_rotation:
    run: ../tools/msap4_rotation.cwl
    in:
      prepared: prepared
    out: [rotation]

outputs:
  rotation:
    type: File
    format: sf:chunk-hdf5
    label: Rotation results
    doc: Chunk file with Prot and S_ph per star
    outputSource: measure_rotation/rotation

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
