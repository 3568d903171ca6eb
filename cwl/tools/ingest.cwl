#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: ingest
label: Ingest a chunk of light curves into the light-curve contract
doc: |
  Reads each star's light curve (stellarflow HDF5, Kepler/TESS FITS with TIME and PDCSAP_FLUX or
  SAP_FLUX, or a plain table with time, flux[, flux_err]), converts times to BJD_TDB - 2457000,
  validates it, and writes one chunk file holding every star in the contract layout. A missing or
  bad light curve makes that star failed, with a one-line error; the chunk goes on. With
  `refer_to_contract_inputs` (the default here) a star whose one file already is a contract HDF5
  is not copied: the chunk refers to it, and MSAP1 reads it given the same `chunk`.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  InlineJavascriptRequirement: {}
  # The chunk record (File paths as seen by the tool) travels in a file: as one command-line
  # argument it would be limited to 128 KiB, about 300 stars.
  InitialWorkDirRequirement:
    listing:
      - entryname: chunk.json
        entry: $(JSON.stringify(inputs.chunk))
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/ingest:1.4.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1024
    tmpdirMin: 256
    outdirMin: 4096

baseCommand: [ingest]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}
  - {prefix: --chunk-file, valueFrom: chunk.json}

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: The manifest's observation_id, recorded in the chunk file
    inputBinding: {prefix: --observation-id}
  chunk:
    type: ../types/stellarflow.yml#Chunk
    label: Chunk of stars
    doc: chunk_id and the stars (with their light-curve Files) to ingest
  refer_to_contract_inputs:
    type: boolean
    default: true
    label: Refer to contract inputs
    doc: Do not copy a light curve whose one input file is already a contract HDF5; the chunk records it (lightcurve_in_input) and the next stage reads the file
    inputBinding: {prefix: --refer-to-contract-inputs}

outputs:
  lightcurves:
    type: File
    format: sf:chunk-hdf5
    label: Ingested light curves
    doc: <chunk_id>.lightcurves.h5, one contract light curve per star under /stars/<star_id>
    outputBinding: {glob: "*.lightcurves.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.lightcurves.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.lightcurves.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.lightcurves.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.lightcurves.profile.json"}

s:softwareVersion: 1.4.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
