cwlVersion: v1.2
class: Workflow
id: tmpdir
doc: A step asks for tmpdir space (tmpdirMin), writes io_mb MiB there and reads them back.
inputs:
  io_mb: {type: int, default: 32}
outputs:
  product: {type: File, outputSource: scratch/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: tmp_source}}
    out: [product]
  scratch:
    run: ../cwl/tools/fake_transform.cwl
    in: {upstream: source/product, label: {default: scratch}, io_mb: io_mb, tmpdir_mb: {default: 128}}
    out: [product]
