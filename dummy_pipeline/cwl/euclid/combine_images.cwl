cwlVersion: v1.2
class: CommandLineTool
id: combine_images
doc: "Reassemble the corrected pieces into one frame."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, combine]
inputs:
  pieces: {type: 'File[]', inputBinding: {prefix: --pieces}}
outputs:
  image: {type: File, outputBinding: {glob: combined.fits}}
  record: {type: File, outputBinding: {glob: combine_images.lineage.json}}
