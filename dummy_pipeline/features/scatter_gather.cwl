cwlVersion: v1.2
class: Workflow
id: scatter_gather
doc: Scatter a producer and a transform over N indexes, gather the N products into one summary.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  indexes: {type: 'int[]', default: [0, 1, 2, 3, 4]}
outputs:
  parts: {type: 'File[]', outputSource: transform/product}
  summary: {type: File, outputSource: gather/summary}
steps:
  produce:
    run: ../cwl/tools/fake_producer.cwl
    scatter: index
    in: {index: indexes, label: {default: scatter}}
    out: [product]
  transform:
    run: ../cwl/tools/fake_transform.cwl
    scatter: upstream
    in: {upstream: produce/product, label: {default: scatter_transform}}
    out: [product]
  gather:
    run: ../cwl/tools/fake_gather.cwl
    in: {parts: transform/product, label: {default: gather}}
    out: [summary]
