#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: sas
label: Stellar Analysis System (PLATO-like) for one observation
doc: |
  Splits the observation's stars into chunks, runs every MSAP stage on each chunk (scatter over
  chunks, not stars), and assembles the catalogue and the report. A star that fails inside a
  tool becomes a failed catalogue row with its error; the rest of its chunk goes on.
  Outputs: catalogue.ecsv, report.html, <star_id>.product.h5 and <star_id>.png per star,
  <chunk_id>.prepared.h5 per chunk (the products' light curves are external links into it: it
  must stay beside them), and the profile of every step (*.profile.json: stellarflow run keeps
  them with the run's record).

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  SubworkflowFeatureRequirement: {}
  StepInputExpressionRequirement: {}
  InlineJavascriptRequirement: {}
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: The manifest's observation_id ([A-Za-z0-9._-]{1,64})
  stars:
    type: ../types/stellarflow.yml#Star[]
    label: Stars
    doc: The manifest's stars with their light-curve Files
  chunk_size:
    type: int
    default: 12
    label: Stars per chunk
    doc: How many stars each science job processes (the unit of scatter)
  figures:
    type: string
    default: all
    label: Which stars get a PNG
    doc: |
      all (default): every star; notable: failed stars and transit candidates; none. Every star
      gets its product HDF5 (which holds all the figure's data) whatever this says.

steps:
  analyse:
    run: sas_all_chunks.cwl
    in:
      observation_id: observation_id
      figures: figures
      chunk_size: chunk_size
      # The stars are sliced into chunks here, once, by the workflow: the light-curve Files go
      # from the workflow's inputs straight to ingest (a tool in between would re-store them),
      # and one expression sees the star list (one per chunk would cost stars x chunks).
      chunks:
        source: stars
        valueFrom: |
          ${
            var size = inputs.chunk_size;
            if (size < 1) { throw "chunk_size must be >= 1, got " + size; }
            var chunks = [];
            for (var i = 0; i < self.length; i += size) {
              chunks.push({"chunk_id": "chunk-" + ("000" + chunks.length).slice(-4),
                           "stars": self.slice(i, i + size)});
            }
            return chunks;
          }
    out: [products, prepared, plots, rows, profiles]
  assemble:
    run: ../tools/catalogue.cwl
    in:
      observation_id: observation_id
      rows: analyse/rows
    out: [catalogue, report, profile]

outputs:
  catalogue:
    type: File
    format: sf:ecsv
    label: Catalogue
    doc: catalogue.ecsv, one row per star (the catalogue contract)
    outputSource: assemble/catalogue
  report:
    type: File
    format: iana:text/html
    label: Run report
    doc: report.html linking every star's products
    outputSource: assemble/report
  products:
    type:
      type: array
      items: {type: array, items: File}
    label: Product HDF5 per star
    doc: Per chunk, the product HDF5 of each star
    outputSource: analyse/products
  lightcurves_prepared:
    type: File[]
    format: sf:chunk-hdf5
    label: Prepared light curves per chunk
    doc: |
      <chunk_id>.prepared.h5 per chunk (MSAP1). The products' /lightcurve/{time,flux,flux_err}
      are HDF5 external links into it by its base name: it lands in the same folder as the
      products and must travel with them
    outputSource: analyse/prepared
  plots:
    type:
      type: array
      items: {type: array, items: File}
    label: PNG per star
    doc: Per chunk, the figure of each star that `figures` selects
    outputSource: analyse/plots
  step_profiles:
    type:
      type: array
      items: {type: array, items: File}
    format: iana:application/json
    label: Step profiles per chunk
    doc: Per chunk, the profile of every step (stellarflow run moves them into the run's record)
    outputSource: analyse/profiles
  assemble_profile:
    type: File
    format: iana:application/json
    label: Profile of the assembly step
    doc: catalogue.profile.json (stellarflow run moves it into the run's record)
    outputSource: assemble/profile

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
