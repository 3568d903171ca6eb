#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: catalogue
label: Catalogue and report assembly
doc: |
  Concatenates the chunks' rows into catalogue.ecsv (the catalogue contract, units in the ECSV
  header) and writes report.html linking every star's PNG and product HDF5.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/catalogue:1.2.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1024
    tmpdirMin: 256
    outdirMin: 256

baseCommand: [catalogue]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: Recorded in the catalogue's metadata and the report's title
    inputBinding: {prefix: --observation-id}
  rows:
    type: File[]
    format: sf:ecsv
    label: Chunk rows
    doc: Every chunk's catalogue rows, in chunk order
    inputBinding: {prefix: --rows}

outputs:
  catalogue:
    type: File
    format: sf:ecsv
    label: Catalogue
    doc: catalogue.ecsv, one row per star
    outputBinding: {glob: catalogue.ecsv}
  report:
    type: File
    format: iana:text/html
    label: Run report
    doc: report.html linking every star's PNG and product HDF5
    outputBinding: {glob: report.html}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "catalogue.summary.json: star counts, fake stages and the rows without timings (deterministic)"
    outputBinding: {glob: catalogue.summary.json}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "catalogue.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "catalogue.profile.json"}

s:softwareVersion: 1.2.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
