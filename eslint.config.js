// Lint rules: typescript-eslint's recommended set plus the few habits STYLE.md asks for.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      '.cache/',
      '.tap/',
      'data/',
      'bench/results/',
      'test-artifacts/',
      'coverage/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      // Refusing control characters in paths and headers is the point of those patterns.
      'no-control-regex': 'off',
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(fs|path|http|crypto|os|url|zlib|net|child_process|stream|util|events)$',
              message: 'use the node: prefix',
            },
          ],
        },
      ],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: ['steering/public/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        Hls: 'readonly',
        AbortController: 'readonly',
        location: 'readonly',
        history: 'readonly',
        requestAnimationFrame: 'readonly',
        navigator: 'readonly',
        Option: 'readonly',
        Event: 'readonly',
        HTMLElement: 'readonly',
      },
    },
  },
)
