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
  MultipleInputFeatureRequirement: {}
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
  figures:
    type: string
    default: all
    label: Which stars get a PNG
    doc: all, notable (failed stars and transit candidates) or none

# Each stage is one tool, so the chunk workflow calls the tools directly: a stage with several
# steps would be a sub-workflow of its own (each sub-workflow costs Toil jobs on the chunk's
# critical path, measured in docs/performance.md).
steps:
  ingest:
    run: ../tools/ingest.cwl
    in:
      observation_id: observation_id
      chunk: chunk
    out: [lightcurves, profile]
  msap1:
    run: ../tools/msap1_preparation.cwl
    in:
      lightcurves: ingest/lightcurves
      chunk: chunk
    out: [prepared, n_seismic_candidates, profile]
  msap4:
    run: ../tools/msap4_rotation.cwl
    in:
      prepared: msap1/prepared
    out: [rotation, profile]
  msap3:
    run: ../tools/msap3_seismology.cwl
    in:
      prepared: msap1/prepared
      n_seismic_candidates: msap1/n_seismic_candidates
    # Only where a solar-like excess is plausible; MSAP5 then falls back on the catalogue.
    when: $(inputs.n_seismic_candidates > 0)
    out: [seismology, profile]
  msap5:
    run: ../tools/msap5_stellar_parameters.cwl
    in:
      prepared: msap1/prepared
      rotation: msap4/rotation
      seismology: msap3/seismology
    out: [parameters, profile]
  transits:
    run: ../tools/transit_search.cwl
    in:
      prepared: msap1/prepared
      parameters: msap5/parameters
    out: [transit, profile]
  star_products:
    run: ../tools/star_products.cwl
    in:
      lightcurves: ingest/lightcurves
      prepared: msap1/prepared
      rotation: msap4/rotation
      seismology: msap3/seismology
      parameters: msap5/parameters
      transit: transits/transit
      figures: figures
    out: [products, plots, rows, profile]

outputs:
  products:
    type: File[]
    format: sf:product-hdf5
    label: Product HDF5 per star
    doc: One product file per star of the chunk
    outputSource: star_products/products
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves of the chunk
    doc: |
      <chunk_id>.prepared.h5 (MSAP1): the products' /lightcurve/{time,flux,flux_err} are HDF5
      external links into it, by its base name, so it is delivered beside them
    outputSource: msap1/prepared
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
  profiles:
    type: File[]
    format: iana:application/json
    label: Step profiles
    doc: The profile of every step that ran on the chunk (MSAP3's only when it ran), in order
    outputSource: [ingest/profile, msap1/profile, msap4/profile, msap3/profile, msap5/profile,
                   transits/profile, star_products/profile]
    linkMerge: merge_flattened
    pickValue: all_non_null

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
