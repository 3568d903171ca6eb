#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: msap1_preparation
label: MSAP1 light-curve preparation
doc: |
  Quality mask, upward sigma clipping, gap detection, gentle per-segment detrending and
  normalisation to relative flux. Also says which stars may show a solar-like power excess
  (from Teff and log g), so that the workflow runs MSAP3 only where it is plausible. A star
  that ingest left in its input file (contracts 1.3.0) is read from it: give `chunk`, the
  record ingest was given.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  InlineJavascriptRequirement: {}
  # The chunk record travels in a file, as for ingest (one argument holds at most 128 KiB).
  InitialWorkDirRequirement:
    listing:
      - entryname: chunk.json
        entry: '$(inputs.chunk === null ? "{}" : JSON.stringify(inputs.chunk))'
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/msap1_preparation:1.2.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 1536
    tmpdirMin: 256
    outdirMin: 4096

baseCommand: [msap1_preparation]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir)}
  - {prefix: --chunk-file, valueFrom: "$(inputs.chunk === null ? null : 'chunk.json')"}

inputs:
  lightcurves:
    type: File
    format: sf:chunk-hdf5
    label: Ingested light curves
    doc: Chunk file written by ingest
    inputBinding: {prefix: --lightcurves}
  chunk:
    type: ../types/stellarflow.yml#Chunk?
    label: Chunk record
    doc: The chunk record ingest was given (its light-curve Files); needed when ingest referred to contract inputs instead of copying them

outputs:
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: <chunk_id>.prepared.h5 with /stars/<star_id>/prepared/{time,flux,flux_err}
    outputBinding: {glob: "*.prepared.h5"}
  n_seismic_candidates:
    type: int
    label: Stars where a solar-like excess is plausible
    doc: Drives the `when` of the MSAP3 step
    outputBinding:
      glob: "*.msap1.json"
      loadContents: true
      outputEval: $(JSON.parse(self[0].contents).n_seismic_candidates)
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.prepared.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.prepared.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.prepared.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.prepared.profile.json"}

s:softwareVersion: 1.2.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
