#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: sas_chunk
label: Stellar Analysis System for one chunk of stars
doc: |
  The MSAP stages for one chunk: MSAP1 (ingest, preparation) -> MSAP4 (rotation) and, where a
  solar-like excess is plausible, MSAP3 (seismology) -> MSAP5 (stellar parameters) -> transit
  search -> per-star products. All stages of a chunk run in sequence so that chunks never wait
  for each other: there is no barrier between stages across the observation.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  InlineJavascriptRequirement: {}
  SubworkflowFeatureRequirement: {}
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: The manifest's observation_id
  chunk:
    type: ../types/stellarflow.yml#Chunk
    label: Chunk of stars
    doc: The stars of this chunk

steps:
  msap1:
    run: msap1_preparation.cwl
    in:
      observation_id: observation_id
      chunk: chunk
    out: [lightcurves, prepared, n_seismic_candidates]
  msap4:
    run: msap4_rotation.cwl
    in:
      prepared: msap1/prepared
    out: [rotation]
  msap3:
    run: msap3_seismology.cwl
    in:
      prepared: msap1/prepared
      n_seismic_candidates: msap1/n_seismic_candidates
    # Only where a solar-like excess is plausible; MSAP5 then falls back on the catalogue.
    when: $(inputs.n_seismic_candidates > 0)
    out: [seismology]
  msap5:
    run: msap5_stellar_parameters.cwl
    in:
      prepared: msap1/prepared
      rotation: msap4/rotation
      seismology: msap3/seismology
    out: [parameters]
  transits:
    run: transit_search.cwl
    in:
      prepared: msap1/prepared
      parameters: msap5/parameters
    out: [transit]
  star_products:
    run: ../tools/star_products.cwl
    in:
      lightcurves: msap1/lightcurves
      prepared: msap1/prepared
      rotation: msap4/rotation
      seismology: msap3/seismology
      parameters: msap5/parameters
      transit: transits/transit
    out: [products, plots, rows]

outputs:
  products:
    type: File[]
    format: sf:product-hdf5
    label: Product HDF5 per star
    doc: One product file per star of the chunk
    outputSource: star_products/products
  plots:
    type: File[]
    format: iana:image/png
    label: PNG per star
    doc: One figure per star of the chunk
    outputSource: star_products/plots
  rows:
    type: File
    format: sf:ecsv
    label: Catalogue rows
    doc: The chunk's catalogue rows
    outputSource: star_products/rows

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
