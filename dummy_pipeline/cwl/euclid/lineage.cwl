cwlVersion: v1.2
class: CommandLineTool
id: lineage
doc: "Link the step records by checksum into one lineage tree per final output."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  InlineJavascriptRequirement: {}
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, lineage]
inputs:
  records: {type: 'File[]', inputBinding: {prefix: --records}}
  catalogue: File
  quality: File
  image: File
  sources: File[]
arguments:
  - prefix: --final
    valueFrom: $(["catalogue=" + inputs.catalogue.path, "quality=" + inputs.quality.path, "image=" + inputs.image.path])
  - prefix: --source
    valueFrom: $(inputs.sources.map(function(f) { return f.nameroot + "=" + f.path; }))
outputs:
  lineage: {type: File, outputBinding: {glob: lineage.json}}
