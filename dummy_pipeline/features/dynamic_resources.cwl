cwlVersion: v1.2
class: Workflow
id: dynamic_resources
doc: sizing writes plan.json; the next step's cores and RAM are read from it.
requirements:
  InlineJavascriptRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  plan_cores: {type: int, default: 2}
  plan_ram_mb: {type: int, default: 700}
outputs:
  plan: {type: File, outputSource: sizing/plan}
  product: {type: File, outputSource: sized/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: dyn_source}}
    out: [product]
  sizing:
    run: ../cwl/tools/fake_sizing.cwl
    in: {upstream: source/product, plan_cores: plan_cores, plan_ram_mb: plan_ram_mb}
    out: [plan]
  sized:
    run: ../cwl/tools/fake_transform.cwl
    in:
      upstream: source/product
      label: {default: sized}
      cores:
        source: sizing/plan
        loadContents: true
        valueFrom: $(JSON.parse(self.contents).plan_cores)
      ram_mb:
        source: sizing/plan
        loadContents: true
        valueFrom: $(JSON.parse(self.contents).plan_ram_mb)
    out: [product]
