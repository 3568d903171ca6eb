cwlVersion: v1.2
class: Workflow
id: nested_innermost
doc: Third level of nesting.
inputs:
  upstream: File
outputs:
  product: {type: File, outputSource: level3/product}
steps:
  level3:
    run: ../cwl/tools/fake_transform.cwl
    in: {upstream: upstream, label: {default: nest_l3}}
    out: [product]
