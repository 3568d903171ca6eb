cwlVersion: v1.2
class: Workflow
id: conditional_pickvalue
doc: |
  `when` picks one of two branches (the_only_non_null) and, in a scatter, keeps only the even
  indexes (all_non_null).
requirements:
  InlineJavascriptRequirement: {}
  MultipleInputFeatureRequirement: {}
  ScatterFeatureRequirement: {}
inputs:
  mode: {type: string, default: fast}
  indexes: {type: 'int[]', default: [0, 1, 2, 3, 4, 5]}
outputs:
  chosen:
    type: File
    outputSource: [fast/product, slow/product]
    pickValue: the_only_non_null
  not_run: {type: File?, outputSource: slow/product}
  evens:
    type: 'File[]'
    outputSource: even_only/product
    pickValue: all_non_null
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: cond_source}}
    out: [product]
  fast:
    run: ../cwl/tools/fake_transform.cwl
    when: $(inputs.mode == "fast")
    in: {upstream: source/product, mode: mode, label: {default: fast}}
    out: [product]
  slow:
    run: ../cwl/tools/fake_transform.cwl
    when: $(inputs.mode == "slow")
    in: {upstream: source/product, mode: mode, label: {default: slow}}
    out: [product]
  even_only:
    run: ../cwl/tools/fake_producer.cwl
    scatter: index
    when: $(inputs.index % 2 == 0)
    in: {index: indexes, label: {default: even}}
    out: [product]
