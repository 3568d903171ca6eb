cwlVersion: v1.2
class: Workflow
id: fan_out
doc: Large fan-out, one scattered job per index (>= 200 by default), gathered into one summary.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  indexes: int[]
  job_cores: {type: float, default: 0.5}
outputs:
  summary: {type: File, outputSource: gather/summary}
steps:
  fan:
    run: ../cwl/tools/fake_producer.cwl
    scatter: index
    in: {index: indexes, label: {default: fan}, cores: job_cores, ram_mb: {default: 100}}
    out: [product]
  gather:
    run: ../cwl/tools/fake_gather.cwl
    in: {parts: fan/product, label: {default: fan_gather}}
    out: [summary]
