cwlVersion: v1.2
class: Workflow
id: walltime
doc: A long-running step (sleep) under a ToolTimeLimit it respects.
inputs:
  sleep: {type: float, default: 5}
  walltime_s: {type: int, default: 120}
outputs:
  product: {type: File, outputSource: long/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: wall_source}}
    out: [product]
  long:
    run: ../cwl/tools/fake_transform.cwl
    in: {upstream: source/product, label: {default: long}, sleep: sleep, walltime_s: walltime_s}
    out: [product]
