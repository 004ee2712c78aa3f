/** docker's `inspect -f` templates (src/cli/go-template.ts): the forms scripts use, and refusals before output. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileGoTemplate, inspectFormatter } from '../../src/cli/go-template.js';

const container = {
  Id: 'abc123',
  Name: '/demo-web-1',
  State: { Status: 'running', Running: true, Health: { Status: 'healthy' } },
  Config: { Labels: { 'com.docker.compose.service': 'web' }, Env: ['A=1', 'B=2'] },
  NetworkSettings: { Networks: { demo_default: { IPAddress: '10.1.0.100' }, other: { IPAddress: '10.2.0.5' } } },
  Mounts: [{ Type: 'volume', Destination: '/data' }],
};
const render = (format: string) => compileGoTemplate(format)(container);

test('fields, index, json, range, if/else, with, variables, pipelines', () => {
  assert.equal(render('{{.State.Status}}'), 'running');
  assert.equal(render('{{ .Id }} {{.Name}}'), 'abc123 /demo-web-1');
  assert.equal(render('{{index .Config.Labels "com.docker.compose.service"}}'), 'web');
  assert.equal(render('{{json .Mounts}}'), '[{"Type":"volume","Destination":"/data"}]');
  assert.equal(render('{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'), '10.1.0.100 10.2.0.5 ');
  assert.equal(
    render('{{ $network := index .NetworkSettings.Networks "demo_default" }}{{ $network.IPAddress }}'),
    '10.1.0.100',
  );
  assert.equal(render('{{if .State.Running}}up{{else}}down{{end}}'), 'up');
  assert.equal(render('{{with .State.Health}}{{.Status}}{{end}}'), 'healthy');
  assert.equal(render('{{range .Config.Env}}{{.}},{{end}}'), 'A=1,B=2,');
  assert.equal(render('{{join .Config.Env ";"}}'), 'A=1;B=2');
  assert.equal(render('{{.Name | upper}}'), '/DEMO-WEB-1');
  assert.equal(render('{{printf "%s:%s" .Id .State.Status}}'), 'abc123:running');
  assert.equal(render('{{.Missing}}'), '<no value>');
  assert.equal(render('{{- .Id -}}  \n'), 'abc123');
  assert.equal(render('{{.State}}'), 'map[Health:map[Status:healthy] Running:true Status:running]');
  assert.equal(render('{{len .Mounts}}\\t{{len .Config.Labels}}'), '1\t1');
});

test('inspect output: JSON array by default or with json, one line per object with a template', () => {
  assert.equal(inspectFormatter(undefined)([{ a: 1 }]), '[\n    {\n        "a": 1\n    }\n]\n');
  assert.equal(inspectFormatter('json')([{ a: 1 }]), inspectFormatter(undefined)([{ a: 1 }]));
  assert.equal(inspectFormatter('{{.a}}')([{ a: 1 }, { a: 2 }]), '1\n2\n');
});

test('what it cannot do is a usage error naming --format, before any output', () => {
  for (const bad of ['{{.A', '{{nosuch .A}}', '{{range .A}}x', '{{end}}', '{{template "x"}}', '{{(index .A "b")}}']) {
    assert.throws(() => compileGoTemplate(bad), /--format: .* in template/, bad);
  }
});
