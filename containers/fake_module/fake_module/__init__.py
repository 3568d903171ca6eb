"""The fake module: stand-ins that read and write the real interfaces, for what does not exist yet.

- ``fake_module``: the Dummy Pipeline's configurable fake (declared inputs/outputs, load, failures;
  fake_module.dummy), and ``fake_euclid``: the Euclid example steps (fake_module.euclid);
- ``fake_sas``: contract-conformant fakes of the SAS science modules (fake_module.sas), installed
  in the image under each module's command name.
Deliberately on numpy 1.x while the science modules use numpy 2: the images are independent.
"""

__version__ = "1.1.0"
