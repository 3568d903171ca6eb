cwlVersion: v1.2
class: CommandLineTool
id: correct_dark
doc: "Subtract the matching cut of the master dark from one piece."
hints:
  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}
requirements:
  ResourceRequirement: {coresMin: 1, ramMin: 256}
  ToolTimeLimit: {timelimit: 300}
baseCommand: [fake_euclid, correct-dark]
inputs:
  piece: {type: File, inputBinding: {prefix: --piece}}
  dark: {type: File, inputBinding: {prefix: --dark}}
outputs:
  corrected: {type: File, outputBinding: {glob: dark_*.fits}}
  record: {type: File, outputBinding: {glob: correct_dark_*.lineage.json}}
