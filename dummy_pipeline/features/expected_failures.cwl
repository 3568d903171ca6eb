cwlVersion: v1.2
class: Workflow
id: expected_failures
doc: |
  Two steps that must fail: one exits non-zero with a known message on stderr, one overruns its
  ToolTimeLimit and must be killed. The run must fail and its log must show both.
  The limit (30 s) is longer than a container's start-up even on a loaded node: podman drops a
  SIGTERM that arrives before the container runs, so a shorter limit could be lost.
inputs:
  message: {type: string, default: "DUMMY-PIPELINE-EXPECTED-FAILURE: this step fails on purpose"}
  overrun_sleep: {type: float, default: 180}
  overrun_walltime_s: {type: int, default: 30}
outputs:
  failed: {type: File, outputSource: must_fail/product}
  overrun: {type: File, outputSource: too_long/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: fail_source}}
    out: [product]
  must_fail:
    run: ../cwl/tools/fake_transform.cwl
    in: {upstream: source/product, label: {default: must_fail}, fail_with: message}
    out: [product]
  too_long:
    run: ../cwl/tools/fake_transform.cwl
    in:
      upstream: source/product
      label: {default: too_long}
      sleep: overrun_sleep
      walltime_s: overrun_walltime_s
    out: [product]
