#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: Workflow
id: msap1_preparation_stage
label: MSAP1 stage — ingest and light-curve preparation of one chunk
doc: Ingest (FITS/table/HDF5 -> contract, validation) then preparation (mask, clip, detrend, normalise).

$namespaces:
  s: https://schema.org/
  sf: https://w3id.org/stellarflow/formats#
  iana: https://www.iana.org/assignments/media-types/

requirements:
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

inputs:
  observation_id:
    type: string
    label: Observation id
    doc: The manifest's observation_id
  chunk:
    type: ../types/stellarflow.yml#Chunk
    label: Chunk of stars
    doc: The stars of this chunk with their light curves

steps:
  ingest:
    run: ../tools/ingest_lightcurves.cwl
    in:
      observation_id: observation_id
      chunk: chunk
    out: [lightcurves]
  prepare:
    run: ../tools/msap1_preparation.cwl
    in:
      lightcurves: ingest/lightcurves
    out: [prepared, n_seismic_candidates]

outputs:
  lightcurves:
    type: File
    format: sf:chunk-hdf5
    label: Ingested light curves
    doc: Chunk file of contract light curves
    outputSource: ingest/lightcurves
  prepared:
    type: File
    format: sf:chunk-hdf5
    label: Prepared light curves
    doc: Chunk file of prepared light curves
    outputSource: prepare/prepared
  n_seismic_candidates:
    type: int
    label: Seismic candidates
    doc: Stars of the chunk where a solar-like excess is plausible
    outputSource: prepare/n_seismic_candidates

s:softwareVersion: 0.1.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
