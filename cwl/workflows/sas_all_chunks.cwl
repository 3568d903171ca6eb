#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: sas_all_chunks
label: The SAS over every chunk of an observation
doc: |
  Scatters sas_chunk.cwl over the observation's chunks. The chunks arrive whole, their stars
  sliced once by sas.cwl: a scatter step that sliced the star list itself would hand every star
  to each chunk's expression, a cost that grows as stars x chunks (docs/performance.md, "A run's
  start at 10 000 stars").

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  ScatterFeatureRequirement: {}
  SubworkflowFeatureRequirement: {}
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: The manifest's observation_id
  chunks:
    type: ../types/stellarflow.yml#Chunk[]
    label: Chunks of stars
    doc: The observation's stars in chunks (chunk-0000, chunk-0001... in manifest order)
  figures:
    type: string
    default: all
    label: Which stars get a PNG
    doc: all, notable (failed stars and transit candidates) or none

steps:
  analyse:
    run: sas_chunk.cwl
    scatter: chunk
    in:
      observation_id: observation_id
      chunk: chunks
      figures: figures
    out: [products, prepared, plots, rows, profiles]

outputs:
  products:
    type:
      type: array
      items: {type: array, items: File}
    format: sf:product-hdf5
    label: Product HDF5 per star
    doc: Per chunk, the product HDF5 of each star
    outputSource: analyse/products
  prepared:
    type: File[]
    format: sf:chunk-hdf5
    label: Prepared light curves per chunk
    doc: Per chunk, <chunk_id>.prepared.h5, into which its products' light curves link
    outputSource: analyse/prepared
  plots:
    type:
      type: array
      items: {type: array, items: File}
    format: iana:image/png
    label: PNG per star
    doc: Per chunk, the figure of each star that `figures` selects
    outputSource: analyse/plots
  rows:
    type: File[]
    format: sf:ecsv
    label: Catalogue rows
    doc: Per chunk, its catalogue rows
    outputSource: analyse/rows
  profiles:
    type:
      type: array
      items: {type: array, items: File}
    format: iana:application/json
    label: Step profiles
    doc: Per chunk, the profile of every step that ran on it
    outputSource: analyse/profiles

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
