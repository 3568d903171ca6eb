#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: msap4_rotation
label: MSAP4 rotation and activity
doc: |
  Rotation period from a Lomb-Scargle periodogram (astropy) of the binned prepared light curve,
  and the photometric activity index S_ph.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/msap4_rotation:1.0.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1024
    tmpdirMin: 256
    outdirMin: 512

baseCommand: [msap4_rotation]
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
  rotation:
    type: File
    format: sf:chunk-hdf5
    label: Rotation results
    doc: <chunk_id>.rotation.h5 with prot_d, prot_err_d, activity_sph_ppm and the periodogram
    outputBinding: {glob: "*.rotation.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.rotation.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.rotation.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.rotation.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.rotation.profile.json"}

s:softwareVersion: 1.0.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
