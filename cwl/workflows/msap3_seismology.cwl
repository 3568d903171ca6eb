#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: msap3_seismology_stage
label: MSAP3 stage — seismology of one chunk
doc: Power density spectrum, background, νmax and Δν (the caller runs it only where plausible).

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
  measure_seismology:
    run: ../tools/msap3_seismology.cwl
    in:
      prepared: prepared
    out: [seismology]

outputs:
  seismology:
    type: File
    format: sf:chunk-hdf5
    label: Seismic results
    doc: Chunk file with νmax, Δν and the PSD per star
    outputSource: measure_seismology/seismology

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
