#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: {{name}}
label: "{{name}}: samples and rms scatter of each light curve"
doc: |
  The number of finite samples and the rms scatter (ppm) of each star's prepared light curve
  (a template written by `stellarflow new-module`: say here what your module measures).

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/{{name}}:1.0.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 512
    tmpdirMin: 256
    outdirMin: 256

baseCommand: [{{name}}]
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
  {{stage}}:
    type: File
    format: sf:chunk-hdf5
    label: "{{name}} results"
    doc: <chunk_id>.{{stage}}.h5 with n_points and rms_ppm per star (containers/{{name}}/contract.json)
    outputBinding: {glob: "*.{{stage}}.h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.{{stage}}.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.{{stage}}.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.{{stage}}.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.{{stage}}.profile.json"}

s:softwareVersion: 1.0.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: your institute
