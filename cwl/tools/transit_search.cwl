#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: transit_search
label: Transit search and characterisation
doc: |
  Box Least Squares (astropy) on the detrended, binned light curve: period, t0, depth, duration,
  SNR; planet radius from the depth and the stellar radius of MSAP5.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/transit_search:1.2.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1536
    tmpdirMin: 256
    outdirMin: 512

baseCommand: [transit_search]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}

inputs:
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file written by msap1_preparation
    inputBinding: {prefix: --prepared}
  parameters:
    type: File
    format: sf:chunk-hdf5
    label: Stellar parameters
    doc: Chunk file written by msap5_stellar_parameters (stellar radius for the planet radius)
    inputBinding: {prefix: --parameters}

outputs:
  transit:
    type: File
    format: sf:chunk-hdf5
    label: Transit results
    doc: <chunk_id>.transit.h5 with period, t0, depth, duration, SNR, planet radius and the BLS periodogram
    outputBinding: {glob: "*.transit.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.transit.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.transit.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.transit.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.transit.profile.json"}

s:softwareVersion: 1.2.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
