import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { deferredSchemaController, deferSerializerCompiler, deferValidatorCompiler } from './lazy-schemas.js';

const schema = {
  querystring: {
    type: 'object',
    properties: {
      limit: { type: 'integer', default: 10 },
      tags: { type: 'array', items: { type: 'string' } },
    },
  },
  body: {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', minLength: 2 } },
    additionalProperties: false,
  },
  response: { 200: { type: 'object', properties: { name: { type: 'string' }, limit: { type: 'integer' } } } },
};

async function appWith(options: {
  schemaController?: ReturnType<typeof deferredSchemaController>;
}): Promise<FastifyInstance> {
  const app = Fastify(options);
  app.post('/things', { schema }, async (request) => ({
    ...(request.body as object),
    ...(request.query as object),
    secret: 'not in the response schema',
  }));
  await app.ready();
  return app;
}

describe('deferred route schemas', () => {
  test('a validator is compiled on its first call, once, and reports its errors as Fastify reads them', () => {
    let compiles = 0;
    const compiler = deferValidatorCompiler(() => {
      compiles++;
      const validate = (data: unknown) => {
        validate.errors = data === 'ok' ? null : [{ message: 'not ok' }];
        return data === 'ok';
      };
      validate.errors = null as unknown;
      return validate;
    });
    const validate = compiler({});
    assert.equal(compiles, 0);
    assert.equal(validate('nope'), false);
    assert.deepEqual(validate.errors, [{ message: 'not ok' }]);
    assert.equal(validate('ok'), true);
    assert.equal(compiles, 1);
  });

  test('a serializer is compiled on its first call, once', () => {
    let compiles = 0;
    const serialize = deferSerializerCompiler(() => {
      compiles++;
      return (data: unknown) => JSON.stringify(data);
    })({});
    assert.equal(compiles, 0);
    assert.equal(serialize({ a: 1 }), '{"a":1}');
    assert.equal(serialize({ a: 2 }), '{"a":2}');
    assert.equal(compiles, 1);
  });

  test("an app with deferred compilers answers exactly as with Fastify's eager ones", async () => {
    const eager = await appWith({});
    const deferred = await appWith({ schemaController: deferredSchemaController() });
    const requests = [
      { url: '/things?tags=a', payload: { name: 'widget' } },
      { url: '/things?limit=3', payload: { name: 'x' } },
      { url: '/things', payload: { name: 'widget', extra: true } },
      { url: '/things?limit=many', payload: { name: 'widget' } },
      { url: '/things', payload: {} },
    ];
    for (const request of requests) {
      const [a, b] = await Promise.all(
        [eager, deferred].map((app) => app.inject({ method: 'POST', ...request })),
      );
      assert.equal(b!.statusCode, a!.statusCode, request.url);
      assert.equal(b!.body, a!.body, request.url);
    }
    await Promise.all([eager.close(), deferred.close()]);
  });
});
