#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: transit_search_stage
label: Transit stage — search and characterisation of one chunk
doc: BLS search, transit parameters and planet radius from the MSAP5 stellar radius.

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
  parameters:
    type: File
    format: sf:chunk-hdf5
    label: Stellar parameters
    doc: Chunk file from the MSAP5 stage

steps:
  search_transits:
    run: ../tools/transit_search.cwl
    in:
      prepared: prepared
      parameters: parameters
    out: [transit]

outputs:
  transit:
    type: File
    format: sf:chunk-hdf5
    label: Transit results
    doc: Chunk file with the transit parameters per star
    outputSource: search_transits/transit

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
