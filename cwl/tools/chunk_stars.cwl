#!/usr/bin/env cwl-runner
cwlVersion: v1.2
class: ExpressionTool
id: chunk_stars
label: Split an observation's stars into chunks (the unit of scatter)
doc: |
  Groups the stars into chunks of `chunk_size` so that every science tool processes a chunk per
  job: Toil costs ~0.4 s per job and a star costs seconds, so scattering over stars would spend
  more on orchestration than on science. It returns positions in the star list, not the stars:
  an ExpressionTool that passed the light-curve Files on would make Toil store a second copy of
  every light curve in its job store (and checksum it); the workflow slices the stars itself.

$namespaces:
  s: https://schema.org/

requirements:
  InlineJavascriptRequirement: {}
  SchemaDefRequirement:
    types:
      - $import: ../types/stellarflow.yml

inputs:
  n_stars:
    type: int
    label: Stars in the observation
    doc: How many stars the manifest lists (>= 0)
  chunk_size:
    type: int
    label: Stars per chunk
    doc: How many stars each science job processes (>= 1)

outputs:
  chunks:
    type: ../types/stellarflow.yml#Span[]
    label: Chunks
    doc: Chunks chunk-0000, chunk-0001... in manifest order, as [start, stop) positions

expression: |
  ${
    if (inputs.chunk_size < 1) { throw "chunk_size must be >= 1, got " + inputs.chunk_size; }
    var chunks = [];
    for (var i = 0; i < inputs.n_stars; i += inputs.chunk_size) {
      chunks.push({"chunk_id": "chunk-" + ("000" + chunks.length).slice(-4),
                   "start": i, "stop": Math.min(i + inputs.chunk_size, inputs.n_stars)});
    }
    return {"chunks": chunks};
  }

s:softwareVersion: 0.2.0
s:license: https://spdx.org/licenses/Apache-2.0
s:author:
  - s:name: stellarflow developers
