cwlVersion: v1.2
class: Workflow
id: retry
doc: A step fails its first attempt on purpose; the runner's retry (Toil retryCount) must rerun it.
inputs:
  attempt_dir: string
  attempt_key: {type: string, default: retry}
outputs:
  product: {type: File, outputSource: flaky/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: retry_source}}
    out: [product]
  flaky:
    run: ../cwl/tools/fake_flaky_transform.cwl
    in:
      upstream: source/product
      label: {default: flaky}
      fail_first_n_attempts: {default: 1}
      attempt_dir: attempt_dir
      attempt_key: attempt_key
    out: [product]
