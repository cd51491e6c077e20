"""Reference code that shows how a private torch API is used responsibly.

Installed with the ``reference`` extra (it imports torch); ``import esper_lint`` never imports this
package.
"""

from esper_lint.reference.gradient_health import GradientHealthMonitor

__all__ = ["GradientHealthMonitor"]
