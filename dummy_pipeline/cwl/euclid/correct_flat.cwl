cwlVersion: v1.2
class: CommandLineTool
id: correct_flat
doc: "Divide one piece by the matching cut of the master flat."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, correct-flat]
inputs:
  piece: {type: File, inputBinding: {prefix: --piece}}
  flat: {type: File, inputBinding: {prefix: --flat}}
outputs:
  corrected: {type: File, outputBinding: {glob: flat_*.fits}}
  record: {type: File, outputBinding: {glob: correct_flat_*.lineage.json}}
