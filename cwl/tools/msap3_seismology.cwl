#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: msap3_seismology
label: MSAP3 seismology
doc: |
  Power density spectrum (astropy Lomb-Scargle), background, νmax and Δν for the stars of the
  chunk where a solar-like excess is plausible; NaN for the others.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/msap3_seismology:1.2.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 2048
    tmpdirMin: 256
    outdirMin: 1024

baseCommand: [msap3_seismology]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}

inputs:
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file written by msap1_preparation
    inputBinding: {prefix: --prepared}

outputs:
  seismology:
    type: File
    format: sf:chunk-hdf5
    label: Seismic results
    doc: <chunk_id>.seismology.h5 with numax_uhz, dnu_uhz (and errors) and the binned PSD
    outputBinding: {glob: "*.seismology.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.seismology.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.seismology.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.seismology.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.seismology.profile.json"}

s:softwareVersion: 1.2.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
