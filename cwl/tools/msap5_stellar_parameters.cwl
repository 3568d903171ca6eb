#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: msap5_stellar_parameters
label: MSAP5 stellar parameters
doc: |
  Radius and mass from the seismic scaling relations with Teff, or from the catalogue Teff,
  log g and [Fe/H] (Torres et al. 2010) without seismology; gyrochronology age where Prot is
  known.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/msap5_stellar_parameters:1.1.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 512
    tmpdirMin: 256
    outdirMin: 256

baseCommand: [msap5_stellar_parameters]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}

inputs:
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file written by msap1_preparation (carries Teff, log g, [Fe/H])
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
    doc: Chunk file written by msap3_seismology; absent when MSAP3 was skipped for the chunk
    inputBinding: {prefix: --seismology}

outputs:
  parameters:
    type: File
    format: sf:chunk-hdf5
    label: Stellar parameters
    doc: <chunk_id>.parameters.h5 with radius, mass, age and their uncertainties
    outputBinding: {glob: "*.parameters.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.parameters.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.parameters.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.parameters.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.parameters.profile.json"}

s:softwareVersion: 1.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
