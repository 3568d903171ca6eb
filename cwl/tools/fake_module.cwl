#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: CommandLineTool
id: fake_module
label: Contract-conformant fake of a SAS science module
doc: |
  Stands in for one SAS science module until its science exists: reads that module's primary input
  and writes the chunk file of its stage by contract (failed stars stay failed, results are NaN, the
  data later stages read passes through) with a passed-here record. `stellarflow run --fake MODULE`
  runs the module's own tool in this image instead; this tool runs a fake on its own.

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

hints:
  DockerRequirement:
    dockerPull: localhost/stellarflow/fake_module:1.1.0
  ResourceRequirement:
    coresMin: 1
    ramMin: 512
    tmpdirMin: 64
    outdirMin: 1024

baseCommand: [fake_sas]
arguments:
  - {prefix: --outdir, valueFrom: $(runtime.outdir), position: 2}

inputs:
  module:
    type:
      type: enum
      symbols: [msap1_preparation, msap3_seismology, msap4_rotation, msap5_stellar_parameters,
                transit_search]
    label: Module to fake
    doc: The SAS science module this fake stands in for (its stage's contract is written)
    inputBinding: {position: 1}
  lightcurves:
    type: File?
    format: sf:chunk-hdf5
    label: Ingested light curves
    doc: The primary input when faking msap1_preparation
    inputBinding: {prefix: --lightcurves, position: 3}
  prepared:
    type: File?
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: The primary input when faking the other modules
    inputBinding: {prefix: --prepared, position: 3}

outputs:
  chunk:
    type: File
    format: sf:chunk-hdf5
    label: Chunk file of the faked stage
    doc: <chunk_id>.<stage>.h5 as the faked module would write it (NaN results, fake_of attr)
    outputBinding: {glob: "chunk-*[0-9].*[a-z].h5"}
  summary:
    type: File
    format: iana:application/json
    label: Step summary
    doc: "<chunk_id>.<stage>.summary.json: per star status, error, results and dataset shapes, no timings (deterministic)"
    outputBinding: {glob: "*.summary.json"}
  profile:
    type: File
    format: iana:application/json
    label: Step profile
    doc: "<chunk_id>.profile.json: what the step used (CPU, memory, I/O, wall) and its files, measured in its container (stellarflow_contracts.profile; timings, so never compared by the tests)"
    outputBinding: {glob: "*.profile.json"}

s:softwareVersion: 1.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
