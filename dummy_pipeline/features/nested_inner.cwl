cwlVersion: v1.2
class: Workflow
id: nested_inner
doc: Second level of nesting; runs the third level as a sub-workflow.
requirements:
  SubworkflowFeatureRequirement: {}
inputs:
  upstream: File
outputs:
  product: {type: File, outputSource: innermost/product}
steps:
  level2:
    run: ../cwl/tools/fake_transform.cwl
    in: {upstream: upstream, label: {default: nest_l2}}
    out: [product]
  innermost:
    run: nested_innermost.cwl
    in: {upstream: level2/product}
    out: [product]
