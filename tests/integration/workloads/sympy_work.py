# SPDX-License-Identifier: MIT
# sympy: symbolic work that exercises a large package's code objects.
import sympy

x, y = sympy.symbols('x y')
print('factor:', sympy.factor(x**4 - 1))
print('integrate:', sympy.integrate(sympy.sin(x)**2, x))
print('diff:', sympy.diff(sympy.exp(x) * sympy.cos(x), x))
print('solve:', sympy.solve(x**2 - 5*x + 6, x))
print('expand:', sympy.expand((x + y)**4))
print('series:', sympy.series(sympy.cos(x), x, 0, 6))
print('limit:', sympy.limit(sympy.sin(x) / x, x, 0))
print('matrix:', sympy.Matrix([[1, 2], [3, 4]]).inv(), sympy.Matrix([[2, 0], [0, 3]]).det())
print('rational:', sympy.Rational(-3, 7) + sympy.Rational(1, 3), sympy.nsimplify(-0.25))
print('simplify:', sympy.simplify(sympy.sin(x)**2 + sympy.cos(x)**2))
print('latex:', sympy.latex(sympy.Integral(sympy.sqrt(x), (x, 0, 1))))
print('N:', sympy.N(sympy.pi, 30), sympy.N(-sympy.E, 12))
print('done')
