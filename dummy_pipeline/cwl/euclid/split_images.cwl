cwlVersion: v1.2
class: CommandLineTool
id: split_images
doc: "Split a FITS frame into n_side x n_side pieces (offsets kept in the header)."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, split]
inputs:
  image: {type: File, inputBinding: {prefix: --image}}
  n_side: {type: int, default: 2, inputBinding: {prefix: --n-side}}
outputs:
  pieces: {type: 'File[]', outputBinding: {glob: piece_*.fits}}
  record: {type: File, outputBinding: {glob: split_images.lineage.json}}
