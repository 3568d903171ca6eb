cwlVersion: v1.2
class: Workflow
id: euclid_example
label: Euclid Dummy Pipeline example
doc: |
  split_images -> scatter(correct_dark -> correct_flat) over the pieces -> combine_images -> extract
  (catalogue + quality file). Every step writes a lineage record; the lineage step links them into
  lineage.json (catalogue <- image + catalog_spec <- ... <- raw, dark, flat).
requirements:
  ScatterFeatureRequirement: {}
  MultipleInputFeatureRequirement: {}
  InlineJavascriptRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  raw: File
  dark: File
  flat: File
  catalog_spec: File
  n_side: {type: int, default: 2}
outputs:
  image: {type: File, outputSource: combine_images/image}
  catalogue: {type: File, outputSource: extract/catalogue}
  quality: {type: File, outputSource: extract/quality}
  lineage: {type: File, outputSource: record_lineage/lineage}
steps:
  split_images:
    run: euclid/split_images.cwl
    in: {image: raw, n_side: n_side}
    out: [pieces, record]
  correct_dark:
    run: euclid/correct_dark.cwl
    scatter: piece
    in: {piece: split_images/pieces, dark: dark}
    out: [corrected, record]
  correct_flat:
    run: euclid/correct_flat.cwl
    scatter: piece
    in: {piece: correct_dark/corrected, flat: flat}
    out: [corrected, record]
  combine_images:
    run: euclid/combine_images.cwl
    in: {pieces: correct_flat/corrected}
    out: [image, record]
  extract:
    run: euclid/extract.cwl
    in: {image: combine_images/image, catalog_spec: catalog_spec}
    out: [catalogue, quality, record]
  record_lineage:
    run: euclid/lineage.cwl
    in:
      records:
        source: [split_images/record, correct_dark/record, correct_flat/record,
                 combine_images/record, extract/record]
        linkMerge: merge_flattened
      catalogue: extract/catalogue
      quality: extract/quality
      image: combine_images/image
      sources:
        source: [raw, dark, flat, catalog_spec]
        linkMerge: merge_flattened
    out: [lineage]
