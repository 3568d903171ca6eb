#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: star_products
label: Per-star products and catalogue rows of a chunk
doc: |
  Writes a product HDF5 (prepared light curve, periodogram, PSD, BLS, parameters with
  uncertainties, provenance of every module) and a PNG per star (or only for the notable ones:
  `figures`), and the chunk's catalogue rows. By default (`lightcurve: link`) a product's light
  curve is external links into the `prepared` chunk file, which must be delivered beside it.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/star_products:1.3.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1536
    tmpdirMin: 256
    outdirMin: 4096

baseCommand: [star_products]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}

inputs:
  lightcurves:
    type: File
    format: sf:chunk-hdf5
    label: Ingested light curves
    doc: Chunk file written by ingest (ingest status and provenance)
    inputBinding: {prefix: --lightcurves}
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file written by msap1_preparation
    inputBinding: {prefix: --prepared}
  rotation:
    type: File
    format: sf:chunk-hdf5
    label: Rotation results
    doc: Chunk file written by msap4_rotation
    inputBinding: {prefix: --rotation}
  seismology:
    type: File?
    format: sf:chunk-hdf5
    label: Seismic results
    doc: Chunk file written by msap3_seismology; absent when MSAP3 was skipped
    inputBinding: {prefix: --seismology}
  parameters:
    type: File
    format: sf:chunk-hdf5
    label: Stellar parameters
    doc: Chunk file written by msap5_stellar_parameters
    inputBinding: {prefix: --parameters}
  transit:
    type: File
    format: sf:chunk-hdf5
    label: Transit results
    doc: Chunk file written by transit_search
    inputBinding: {prefix: --transit}
  figures:
    type: string
    default: all
    label: Which stars get a PNG
    doc: all (default), notable (failed stars and transit candidates) or none; every star gets its product HDF5
    inputBinding: {prefix: --figures}
  lightcurve:
    type:
      type: enum
      symbols: [link, copy]
    default: link
    label: How a product holds its light curve
    doc: "link (default): time, flux and flux_err are HDF5 external links into the prepared chunk file (by its base name: deliver it beside the products, root attr lightcurve_file); copy: the product holds them"
    inputBinding: {prefix: --lightcurve}

outputs:
  products:
    type: File[]
    format: sf:product-hdf5
    label: Product HDF5 per star
    doc: <star_id>.product.h5
    outputBinding: {glob: "*.product.h5"}
  plots:
    type: File[]
    format: iana:image/png
    label: PNG per star
    doc: <star_id>.png (light curve, periodogram, PSD, folded transit), for the stars `figures` selects
    outputBinding: {glob: "*.png"}
  rows:
    type: File
    format: sf:ecsv
    label: Catalogue rows
    doc: <chunk_id>.rows.ecsv, the chunk's catalogue rows
    outputBinding: {glob: "*.rows.ecsv"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.rows.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.rows.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.rows.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.rows.profile.json"}

s:softwareVersion: 1.3.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
