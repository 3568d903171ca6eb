#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: msap5_stellar_parameters_stage
label: MSAP5 stage — stellar parameters of one chunk
doc: Radius, mass (seismic or catalogue fallback) and gyrochronology age.

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
  rotation:
    type: File
    format: sf:chunk-hdf5
    label: Rotation results
    doc: Chunk file from the MSAP4 stage
  seismology:
    type: File?
    format: sf:chunk-hdf5
    label: Seismic results
    doc: Chunk file from the MSAP3 stage, null when it was skipped

steps:
  derive_parameters:
    run: ../tools/msap5_stellar_parameters.cwl
    in:
      prepared: prepared
      rotation: rotation
      seismology: seismology
    out: [parameters]

outputs:
  parameters:
    type: File
    format: sf:chunk-hdf5
    label: Stellar parameters
    doc: Chunk file with R, M, age and uncertainties per star
    outputSource: derive_parameters/parameters

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
