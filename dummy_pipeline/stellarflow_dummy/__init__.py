"""The Dummy Pipeline: fake modules, the Euclid example and the runner feature suite.

``stellarflow validate-site --site PROFILE`` runs it through a site's Toil profile.
"""

__version__ = "0.1.0"

IMAGE = "localhost/stellarflow/fake_module:1.1.0"  # containers/fake_module
