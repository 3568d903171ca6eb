cwlVersion: v1.2
class: CommandLineTool
id: extract
doc: "Detect sources (threshold, aperture photometry): a catalogue and a quality file."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, extract]
inputs:
  image: {type: File, inputBinding: {prefix: --image}}
  catalog_spec: {type: File, inputBinding: {prefix: --catalog-spec}}
outputs:
  catalogue: {type: File, outputBinding: {glob: catalogue.ecsv}}
  quality: {type: File, outputBinding: {glob: quality.json}}
  record: {type: File, outputBinding: {glob: extract.lineage.json}}
