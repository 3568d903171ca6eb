cwlVersion: v1.2
class: Workflow
id: dynamic_resources
doc: |
  sizing writes plan.json; its tool reads the plan's fields back (outputEval) and the next
  step's ResourceRequirement (coresMin/ramMin) takes its cores and RAM from them.
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
    out: [plan, plan_plan_cores, plan_plan_ram_mb]
  sized:
    run: ../cwl/tools/fake_transform.cwl
    in:
      upstream: source/product
      label: {default: sized}
      cores: sizing/plan_plan_cores
      ram_mb: sizing/plan_plan_ram_mb
    out: [product]
