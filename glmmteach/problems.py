"""What a fit can warn about: below every module that fits, refits or reports, so that none of them has to
import another to name it.

:class:`ConvergenceWarning` is issued when a fit did not converge, is singular (a variance at zero, a
correlation at +1 or -1) or has a Hessian that is not positive definite; ``glmmteach.ConvergenceWarning`` and
``glmmteach.fit.ConvergenceWarning`` are this class.
"""


class ConvergenceWarning(UserWarning):
    """The fit did not converge, is singular, or its Hessian is not positive definite."""
