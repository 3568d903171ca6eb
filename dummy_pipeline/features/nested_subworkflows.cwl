cwlVersion: v1.2
class: Workflow
id: nested_subworkflows
doc: Three levels of workflows; the product's passed-here chain must read nest_l1, nest_l2, nest_l3.
requirements:
  SubworkflowFeatureRequirement: {}
inputs: []
outputs:
  product: {type: File, outputSource: inner/product}
steps:
  level1:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: nest_l1}}
    out: [product]
  inner:
    run: nested_inner.cwl
    in: {upstream: level1/product}
    out: [product]
