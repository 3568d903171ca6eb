cwlVersion: v1.2
class: Workflow
id: secondary_files
doc: A product travels with its .sha256 secondary file; the reader refuses it without one.
inputs: []
outputs:
  indexed: {type: File, outputSource: writer/product, secondaryFiles: [.sha256]}
  product: {type: File, outputSource: reader/product}
steps:
  source:
    run: ../cwl/tools/fake_producer.cwl
    in: {label: {default: sec_source}}
    out: [product]
  writer:
    run: ../cwl/tools/fake_indexed_writer.cwl
    in: {upstream: source/product}
    out: [product]
  reader:
    run: ../cwl/tools/fake_indexed_reader.cwl
    in: {indexed: writer/product}
    out: [product]
